"""Per-layer summaries of an IR (like torchinfo), as a table or as JSON-ready data."""

from __future__ import annotations

from archdsl import ir
from archdsl.evaluate import format_shape


def summary_data(g: ir.Graph) -> dict:
    """The summary as plain data: network, inputs, outputs, layers, totals."""
    nodes = g.nodes
    return {
        "network": g.graph["network"],
        "file": g.graph["file"],
        "params": g.graph["params"],
        "inputs": {n: list(nodes[n]["shape"]) for n in g.graph["inputs"]},
        "outputs": {k: {"node": n, "shape": list(nodes[n]["shape"])} for k, n in g.graph["outputs"].items()},
        "layers": [
            {"name": n, "op": nodes[n]["op"], "shape": list(nodes[n]["shape"]), "params": nodes[n]["params"],
             "macs": nodes[n]["macs"]}
            for n in ir.layers(g)
        ],
        "total_params": ir.total_params(g),
        "total_macs": ir.total_macs(g),
        "checks": [{"expect": c["expect"], "ok": c["ok"], "detail": c["detail"]} for c in g.graph.get("checks", [])],
    }


def human(n: int) -> str:
    """1234567 -> '1.23M'."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def summary_table(g: ir.Graph) -> str:
    """A fixed-width table with one row per layer and the totals."""
    data = summary_data(g)
    rows = [(layer["name"], layer["op"], format_shape(layer["shape"]), f"{layer['params']:,}", f"{layer['macs']:,}")
            for layer in data["layers"]]
    header = ("layer", "op", "output shape", "params", "MACs")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(5)]

    def line(row):
        return "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1]), row[2].ljust(widths[2]),
                          row[3].rjust(widths[3]), row[4].rjust(widths[4])]).rstrip()

    rule = "-" * len(line(header))
    inputs = ", ".join(f"{k} {format_shape(v)}" for k, v in data["inputs"].items())
    outputs = ", ".join(f"{k} {format_shape(v['shape'])}" for k, v in data["outputs"].items())
    out = [f"{data['network']} ({data['file']})", rule, line(header), rule, *map(line, rows), rule,
           f"inputs: {inputs}", f"outputs: {outputs}",
           f"total params: {data['total_params']:,} ({human(data['total_params'])})",
           f"total MACs: {data['total_macs']:,} ({human(data['total_macs'])})"]
    for check in data["checks"]:
        out.append(f"expect {check['expect']}: {'ok' if check['ok'] else 'FAILED'} ({check['detail']})")
    return "\n".join(out)
