"""`archdsl render FILE -o OUT.{svg,pdf,png,dot,tex}`: the command-line front of archdsl.render."""

from __future__ import annotations

from archdsl.api import build_ir
from archdsl.loader import load
from archdsl.render.dot import to_digraph, write
from archdsl.render.view import RenderOptions, build_view


def options_from_args(args) -> RenderOptions:
    return RenderOptions(detail=args.detail, expand=tuple(args.expand), collapse=tuple(args.collapse),
                         fold=args.fold, direction=args.direction, theme=args.theme, shapes=args.shapes,
                         params=args.params, unroll=args.unroll)


def render_command(args, overrides: dict) -> int:
    """Draw one network; prints what was drawn and at which level of detail."""
    g = build_ir(load(args.file), args.network, **overrides)
    options = options_from_args(args)
    view = build_view(g, options)
    path = write(to_digraph(view, options), args.output, dpi=args.dpi, standalone=args.standalone)
    print(f"wrote {path}: {view.network}, {view.note}")
    return 0
