"""How each kind of drawn thing looks: the color and grayscale themes, node shapes, edge styles.

Nodes are styled by the op's `category` (conv, pool, norm, act, fc, merge, shape, clique)
plus a few ops whose drawing carries meaning of its own (the circled plus of a sum, the
gate of a highway layer, the channel shuffle). The grayscale theme never relies on color
alone: feedback links are dashed and gate paths bold in both themes. All text uses
Helvetica, which Graphviz's cairo renderer resolves to an installed metric-compatible font
and embeds (subset) in PDF output.
"""

from __future__ import annotations

FONT = "Helvetica"

THEMES: dict[str, dict[str, str]] = {
    "color": {
        "conv": "#cfe2f3", "pool": "#f4cccc", "norm": "#fff2cc", "act": "#d9ead3", "fc": "#d9d2e9",
        "merge": "#ffffff", "shape": "#eeeeee", "clique": "#fce5cd", "layer": "#f3f3f3", "block": "#dbe5f1",
        "io": "#ffffff", "line": "#333333", "feedback": "#c0392b", "gate": "#7d3c98", "cluster": "#8c8c8c",
        "inner": "#b3b3b3", "label": "#404040",
    },
    "gray": {
        "conv": "#e3e3e3", "pool": "#c8c8c8", "norm": "#f7f7f7", "act": "#ffffff", "fc": "#b8b8b8",
        "merge": "#ffffff", "shape": "#efefef", "clique": "#d6d6d6", "layer": "#f0f0f0", "block": "#e6e6e6",
        "io": "#ffffff", "line": "#222222", "feedback": "#222222", "gate": "#222222", "cluster": "#777777",
        "inner": "#aaaaaa", "label": "#333333",
    },
}

GRAPH = {"fontname": FONT, "fontsize": "10", "nodesep": "0.3", "ranksep": "0.32", "newrank": "true",
         "outputorder": "edgesfirst", "pad": "0.1", "compound": "true"}


def node_style(node, theme: dict[str, str]) -> dict[str, str]:
    """Graphviz attributes of one drawn node (its label is built by the caller)."""
    base = {"fontname": FONT, "color": theme["line"], "penwidth": "0.8"}
    fill = theme.get(node.category, theme["layer"])
    if node.role in ("input", "output"):
        return {**base, "shape": "plaintext", "fontsize": "10", "height": "0.2", "margin": "0.04,0.02"}
    if node.role == "block":
        extra = {"peripheries": "2"} if node.count > 1 else {}
        return {**base, "shape": "box", "style": "filled", "fillcolor": theme["block"], "fontsize": "11",
                "margin": "0.12,0.06", **extra}
    special = {
        "add": {"shape": "circle", "label": "+", "fixedsize": "true", "width": "0.26", "fontsize": "14"},
        "mul": {"shape": "circle", "label": "×", "fixedsize": "true", "width": "0.26", "fontsize": "13"},
        "gate": {"shape": "circle", "fixedsize": "true", "width": "0.42", "fontsize": "9",
                 "color": theme["gate"], "penwidth": "1.4"},
        "shuffle": {"shape": "hexagon", "style": "filled", "fontsize": "9", "height": "0.3"},
        "clique_layer": {"shape": "ellipse", "style": "filled", "width": "0.42", "height": "0.42", "margin": "0.02",
                         "fontsize": "11"},
        "concat": {"shape": "box", "style": "filled", "fontsize": "9", "height": "0.22", "penwidth": "1.2",
                   "fillcolor": theme["shape"]},
    }.get(node.op)
    if special:
        return {**base, "fillcolor": fill, **special}
    small = node.category in ("norm", "act", "shape") or node.op == "clique_output"
    return {**base, "shape": "box", "style": "rounded,filled", "fillcolor": fill,
            "fontsize": "9" if small else "11", "height": "0.2" if small else "0.3",
            "margin": "0.08,0.03" if small else "0.11,0.05"}


def edge_style(edge, theme: dict[str, str]) -> dict[str, str]:
    attrs = {"color": theme["line"], "arrowsize": "0.55", "penwidth": "0.9", "fontname": FONT, "fontsize": "8",
             "fontcolor": theme["label"]}
    if edge.kind == "feedback":
        attrs.update(style="dashed", color=theme["feedback"], fontcolor=theme["feedback"], penwidth="1.1")
    if edge.role == "T":
        attrs.update(color=theme["gate"], fontcolor=theme["gate"], penwidth="1.6")
    return attrs


def cluster_style(cluster, theme: dict[str, str], inner: bool) -> dict[str, str]:
    if inner:
        return {"style": "rounded,dashed", "color": theme["inner"], "fontsize": "8", "fontcolor": theme["label"],
                "labeljust": "l", "fontname": FONT, "margin": "6"}
    return {"style": "rounded", "color": theme["cluster"], "fontsize": "10", "fontcolor": theme["label"],
            "labeljust": "l", "fontname": FONT, "penwidth": "1.8" if cluster.count > 1 else "0.8", "margin": "8"}
