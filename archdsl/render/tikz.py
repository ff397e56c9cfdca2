"""TikZ output for LaTeX papers: `archdsl render ... -o net.tex`.

The picture is Graphviz's own drawing: `dot -Tjson` lays the graph out and lists, for every
cluster, node and edge, the shapes it draws (xdot operations: polygons, Bézier curves,
ellipses, text with its position and alignment). Each becomes one TikZ command, so the
picture has exactly the layout of the PDF and SVG output. Text takes the document's font
family (only sizes and bold are set), so labels match the paper's text; colors are defined
inside the picture. With `standalone`, the picture comes wrapped in a document that
`pdflatex` compiles on its own (packages: tikz, geometry).
"""

from __future__ import annotations

import json
import re

FONT_BOLD = 1  # xdot font characteristics: bit 0 bold
SPECIAL = {"\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#",
           "^": r"\^{}", "_": r"\_", "%": r"\%", "~": r"\~{}", "×": r"\ensuremath{\times}",
           "·": r"\ensuremath{\cdot}", "−": r"\ensuremath{-}", "→": r"\ensuremath{\to}"}
NAMED = {"black": "000000", "white": "ffffff", "red": "ff0000", "blue": "0000ff", "gray": "c0c0c0",
         "grey": "c0c0c0", "green": "00ff00"}


def tikz_from_json(layout: bytes | str, standalone: bool = False) -> str:
    """TikZ source of a `dot -Tjson` layout; a whole document when `standalone`."""
    data = json.loads(layout)
    picture = _Picture()
    x0, y0, x1, y1 = (float(v) for v in data["bb"].split(","))
    pad = 4.0
    picture.lines.append(f"\\useasboundingbox ({_n(x0 - pad)},{_n(y0 - pad)}) rectangle ({_n(x1 + pad)},{_n(y1 + pad)});")
    clusters = [o for o in data.get("objects", []) if "nodes" in o or "edges" in o or o.get("name", "").startswith("cluster")]
    nodes = [o for o in data.get("objects", []) if o not in clusters]
    edges = data.get("edges", [])
    for item in clusters:
        picture.draw(item, "_draw_", "_ldraw_")
    groups = [(edges, ("_draw_", "_tdraw_", "_hdraw_", "_ldraw_", "_tldraw_", "_hldraw_")),
              (nodes, ("_draw_", "_ldraw_"))]
    if data.get("outputorder") != "edgesfirst":
        groups.reverse()
    for items, keys in groups:
        for item in items:
            picture.draw(item, *keys)
    body = "\n".join(["\\begin{tikzpicture}[x=1bp, y=1bp, line join=round, line cap=round]",
                      *picture.colors, *picture.lines, "\\end{tikzpicture}"])
    if not standalone:
        return (f"% archdsl: the diagram {data.get('name', '')} as a TikZ picture; \\usepackage{{tikz}} in the preamble\n"
                f"{body}\n")
    width, height = x1 - x0 + 2 * pad, y1 - y0 + 2 * pad
    return "\n".join([
        f"% archdsl: the diagram {data.get('name', '')}; compile with pdflatex",
        "\\documentclass{article}",
        "\\usepackage{tikz}",
        f"\\usepackage[paperwidth={_n(width + 1)}bp, paperheight={_n(height + 1)}bp, margin=0pt]{{geometry}}",
        "\\pagestyle{empty}",
        "\\setlength{\\parindent}{0pt}",
        "\\setlength{\\topskip}{0pt}",
        "\\begin{document}",
        body,
        "\\end{document}",
        "",
    ])


def _n(value: float) -> str:
    """A coordinate: at most two decimals, no trailing zeros."""
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _escape(text: str) -> str:
    return "".join(SPECIAL.get(ch, ch) for ch in text)


class _Picture:
    """Accumulates TikZ commands and the colors they use."""

    def __init__(self):
        self.lines: list[str] = []
        self.colors: list[str] = []
        self.names: dict[str, str] = {}

    def color(self, value: str) -> tuple[str | None, float]:
        """A defined color name and an opacity for an xdot color ('#rrggbb[aa]' or a name)."""
        value = value.strip().lower()
        if value in ("none", "transparent", ""):
            return None, 0.0
        match = re.fullmatch(r"#([0-9a-f]{6})([0-9a-f]{2})?", value)
        rgb = match.group(1) if match else NAMED.get(value)
        if rgb is None:
            return "black", 1.0
        alpha = int(match.group(2), 16) / 255 if match and match.group(2) else 1.0
        if alpha == 0:
            return None, 0.0
        if rgb not in self.names:
            self.names[rgb] = f"archdsl{len(self.names)}"
            self.colors.append(f"\\definecolor{{{self.names[rgb]}}}{{HTML}}{{{rgb.upper()}}}")
        return self.names[rgb], alpha

    def draw(self, item: dict, *keys: str) -> None:
        for key in keys:
            self._ops(item.get(key) or [])

    def _ops(self, ops: list) -> None:
        pen, fill = ("black", 1.0), ("black", 1.0)
        width, dash = 1.0, None
        size, bold = 14.0, False
        for op in ops:
            kind = op["op"]
            if kind == "c":
                pen = self.color(op.get("color", "black"))
            elif kind == "C":
                fill = self.color(op.get("color", "black"))
            elif kind == "S":
                style = op["style"]
                if style.startswith("setlinewidth("):
                    width = float(style[len("setlinewidth("):-1])
                elif style in ("dashed", "dotted"):
                    dash = style
                elif style == "solid":
                    dash = None
                elif style == "bold":
                    width = 2.0
            elif kind == "F":
                size = float(op["size"])
            elif kind == "t":
                bold = bool(int(op["fontchar"]) & FONT_BOLD)
            elif kind in "pPbBLeE":
                self._shape(kind, op, pen, fill, width, dash)
            elif kind == "T":
                self._text(op, pen, size, bold)

    def _shape(self, kind: str, op: dict, pen, fill, width: float, dash) -> None:
        filled = kind in "PBE"
        options = []
        if pen[0] is not None:
            options += [f"draw={pen[0]}", f"line width={_n(width)}bp"]
            if pen[1] < 1:
                options.append(f"draw opacity={_n(pen[1])}")
            if dash:
                options.append(dash)
        if filled and fill[0] is not None:
            options.append(f"fill={fill[0]}")
            if fill[1] < 1:
                options.append(f"fill opacity={_n(fill[1])}")
        if not options or (not filled and pen[0] is None):
            return
        if kind in "eE":
            (x, y), (w, h) = op["rect"][:2], op["rect"][2:]
            self.lines.append(f"\\path[{', '.join(options)}] ({_n(x)},{_n(y)}) ellipse ({_n(w)} and {_n(h)});")
            return
        points = [f"({_n(x)},{_n(y)})" for x, y in op["points"]]
        if kind in "bB":
            parts = [points[0]]
            for i in range(1, len(points) - 2, 3):
                parts.append(f".. controls {points[i]} and {points[i + 1]} .. {points[i + 2]}")
            path = " ".join(parts)
        else:
            path = " -- ".join(points)
        if kind in "pPB":
            path += " -- cycle"
        self.lines.append(f"\\path[{', '.join(options)}] {path};")

    def _text(self, op: dict, pen, size: float, bold: bool) -> None:
        text = op["text"].strip()
        if not text or pen[0] is None:
            return
        anchor = {"l": "base west", "r": "base east"}.get(op.get("align", "c"), "base")
        x, y = op["pt"]
        if op.get("align") == "l":
            x += (len(op["text"]) - len(op["text"].lstrip())) * size * 0.28  # keep a leading space's offset
        font = f"\\fontsize{{{_n(size)}}}{{{_n(size * 1.2)}}}\\selectfont" + ("\\bfseries" if bold else "")
        self.lines.append(f"\\node[anchor={anchor}, inner sep=0pt, text={pen[0]}, font={font}] "
                          f"at ({_n(x)},{_n(y)}) {{{_escape(text)}}};")
