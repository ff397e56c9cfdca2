"""How long `archdsl render` takes for a 1000-layer network at the default level of detail.

Run: python benchmarks/render_speed.py [--layers 1000]. Prints the time to build the IR,
to choose and build the drawn view, and to lay out and write SVG and PDF with `dot`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from archdsl.api import build_ir
from archdsl.render import RenderOptions, build_view, to_digraph, write

UNIT_LAYERS = 7  # conv bn relu conv bn add relu


def deep_spec(layers: int) -> str:
    """A plain residual network of about `layers` layers: a stem, identical units, a head."""
    units = max(1, -(-(layers - 4) // UNIT_LAYERS))
    return f"""
block unit(c) {{
  residual {{
    conv(c, 3, bias = false) -> bn -> relu
    conv(c, 3, bias = false) -> bn
  }}
  relu
}}
network deep(units = {units}) {{
  input image: [16, 32, 32]
  conv(16, 3)
  for i in range(units) {{ unit(16) as "unit{{i}}" }}
  output logits = gap -> flatten -> fc(10)
}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=1000)
    args = parser.parse_args()
    t0 = time.perf_counter()
    g = build_ir(deep_spec(args.layers))
    t1 = time.perf_counter()
    view = build_view(g, RenderOptions())
    dg = to_digraph(view)
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        write(dg, Path(tmp) / "deep.svg")
        t3 = time.perf_counter()
        write(dg, Path(tmp) / "deep.pdf")
        t4 = time.perf_counter()
    layers = sum(1 for n in g if g.nodes[n]["op"] != "input")
    print(f"{layers} layers -> {len(view.nodes)} drawn nodes: {view.note}")
    print(f"build IR {t1 - t0:.2f} s, view + DOT {t2 - t1:.2f} s, dot -> SVG {t3 - t2:.2f} s, "
          f"dot -> PDF {t4 - t3:.2f} s; render total (view + SVG) {t3 - t1:.2f} s")


if __name__ == "__main__":
    main()
