"""Exhaustive layout-order check: every network and variant of every spec in specs/, under several
option sets, in both directions, must draw parallel paths and clique rows in the spec's order.

    python scripts/check_render_order.py [SPEC.arch ...]

Prints one line per failure and a summary (drawings checked, failures, seconds); exit status 1
on any failure. tests/test_render_layout.py checks the gallery's option sets on every run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout without installing

from archdsl.api import build_ir
from archdsl.diagnostics import ArchError, UsageError
from archdsl.loader import load
from archdsl.render import RenderOptions, build_view, misordered, to_digraph

OPTION_SETS = [RenderOptions(), RenderOptions(shapes=True), RenderOptions(detail="blocks", shapes=True, params=True),
               RenderOptions(detail="layers", fold=True, shapes=True), RenderOptions(unroll=True, shapes=True)]


def main(files: list[str]) -> int:
    start, checked, failures = time.perf_counter(), 0, 0
    for file in files or sorted(str(p) for p in (ROOT / "specs").glob("*.arch")):
        program = load(file)
        for target in program.targets():
            try:
                g = build_ir(program, target)
            except (UsageError, ArchError):
                continue  # a network without defaults: drawn through its variants
            for options in OPTION_SETS:
                for direction in ("TB", "LR"):
                    drawn = RenderOptions(**{**options.__dict__, "direction": direction})
                    view = build_view(g, drawn)
                    wrong = misordered(view, to_digraph(view, drawn), direction)
                    checked += 1
                    if wrong:
                        failures += 1
                        print(f"{Path(file).name} {target} {direction} {drawn}: out of order {wrong}")
    print(f"{checked} drawings checked, {failures} out of order, {time.perf_counter() - start:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
