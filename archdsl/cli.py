"""The `archdsl` command line: check, summary, list, compile, render.

Exit status: 0 on success, 1 for errors in a spec, 2 for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys

from archdsl import __version__
from archdsl.api import build_ir
from archdsl.diagnostics import ArchError, UsageError
from archdsl.elaborate import elaborate
from archdsl.evaluate import Evaluator
from archdsl.loader import load
from archdsl.summary import summary_data, summary_table
from archdsl.syntax.parser import parse_expr


def parse_define(text: str) -> tuple[str, object]:
    """`-D name=value`: the value is a spec expression (`24`, `[6, 12]`, `true`), else a plain string."""
    if "=" not in text:
        raise _usage(f"-D expects name=value, found '{text}'")
    name, raw = text.split("=", 1)
    try:
        value = Evaluator({}.__getitem__)(parse_expr(raw, "<-D>"))
    except ArchError:
        value = raw
    if callable(value):  # `-D pool=max` names the string "max", not the builtin max()
        value = raw
    return name.strip(), value


def _usage(message: str) -> UsageError:
    from archdsl.diagnostics import Diagnostic

    return UsageError(Diagnostic(message, help="see 'archdsl --help'"))


def _overrides(args) -> dict:
    return dict(parse_define(d) for d in args.define or [])


def cmd_check(args) -> int:
    failed = usage = False
    for file in args.files:
        try:
            program = load(file)
            targets = [args.network] if args.network else program.targets()
            checks = 0
            errors = []
            for target in targets:
                try:
                    g = elaborate(program, target)
                    checks += len(g.graph["checks"])
                except UsageError:
                    if args.network:  # asked for by name: an unknown network, or one that needs parameters
                        raise
                    continue  # a network whose parameters have no defaults: checked through its variants
                except ArchError as exc:
                    errors.extend(d for d in exc.diagnostics if d not in errors)
            if errors:
                raise ArchError(errors, program.sources)
            print(f"{file}: ok ({len(targets)} networks, {checks} expectations met)")
        except UsageError as exc:
            print(exc.render(), file=sys.stderr)
            usage = True
        except ArchError as exc:
            print(exc.render(), file=sys.stderr)
            failed = True
    return 2 if usage else 1 if failed else 0


def cmd_summary(args) -> int:
    g = build_ir(load(args.file), args.network, **_overrides(args))
    if args.format == "json":
        print(json.dumps(summary_data(g), indent=2))
    else:
        print(summary_table(g))
    return 0


def cmd_list(args) -> int:
    for file in args.files:
        program = load(file)
        print(f"{file}:")
        for name in program.targets():
            if name in program.networks:
                params = ", ".join(p.name if p.default is None else f"{p.name}={_source(program, p.default)}"
                                   for p in program.networks[name].params)
                print(f"  network {name}({params})")
            else:
                v = program.variants[name]
                given = [_source(program, a) for a in v.args] + [f"{k}={_source(program, e)}" for k, e in v.kwargs]
                print(f"  variant {name} = {v.target}({', '.join(given)})")
    return 0


def _source(program, expr) -> str:
    span = expr.span
    lines = program.sources[span.file].splitlines()
    if span.line == span.end_line:
        return lines[span.line - 1][span.col - 1:span.end_col - 1]
    return "..."


def cmd_compile(args) -> int:
    from archdsl.backend.cli import compile_command

    return compile_command(args, _overrides(args))


def cmd_render(args) -> int:
    from archdsl.render.cli import render_command

    return render_command(args, _overrides(args))


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="archdsl", description="Compile .arch network specs: check shapes, "
                                  "summarise, draw with Graphviz, build PyTorch modules.")
    top.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def target(p):
        p.add_argument("file", help="a .arch spec file")
        p.add_argument("--network", "-n", help="network or variant (default: the file's first variant)")
        p.add_argument("-D", dest="define", action="append", metavar="NAME=VALUE", help="override a parameter")

    p = sub.add_parser("check", help="validate specs and their stated figures")
    p.add_argument("files", nargs="+")
    p.add_argument("--network", "-n", help="check only this network or variant (default: all of them)")
    p.set_defaults(run=cmd_check)
    p = sub.add_parser("summary", help="per-layer shapes, parameters and MACs")
    target(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=cmd_summary)
    p = sub.add_parser("list", help="networks and variants defined by files")
    p.add_argument("files", nargs="+")
    p.set_defaults(run=cmd_list)
    p = sub.add_parser("compile", help="build the PyTorch module, run it once, write an artifact")
    target(p)
    p.add_argument("-o", "--output", help="output file (default: NETWORK.py, .pt2, .onnx or .yaml in the current "
                   "directory)")
    p.add_argument("--emit", choices=("py", "pt2", "onnx", "yaml"), default="py",
                   help="py: a standalone PyTorch module (default); pt2: a torch.export program; onnx: an ONNX "
                        "model (opset 18, needs archdsl[onnx]); both with a dynamic batch axis; yaml: the IR")
    p.add_argument("--weights", metavar="SOURCE", help="load these weights (a .pt, .pth or .safetensors "
                   "checkpoint, e.g. a torchvision state_dict) by name or structure; with --emit py, also write "
                   "them under the module's own names beside the output (NETWORK.pt)")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the written paths")
    p.add_argument("--device", default="cpu", help="torch device for the test forward pass (cpu, cuda, cuda:1)")
    p.add_argument("--seed", type=int, default=0, help="initialisation seed")
    p.add_argument("--memory-efficient", action="store_true",
                   help="recompute concat-BN-ReLU-conv chains (clique updates, dense layers, "
                        "transitions, heads) in backward: less memory")
    p.set_defaults(run=cmd_compile)
    p = sub.add_parser("render", help="draw the network with Graphviz")
    target(p)
    p.add_argument("-o", "--output", required=True, help="OUT.svg, .pdf, .png or .dot")
    p.add_argument("--detail", default="auto", help="auto (every layer unless that is over 60 nodes), layers, "
                   "blocks, or a nesting depth (0, 1, 2..)")
    p.add_argument("--expand", action="append", default=[], metavar="SCOPE", help="draw this block's layers")
    p.add_argument("--collapse", action="append", default=[], metavar="SCOPE", help="draw this block as one node")
    p.add_argument("--fold", action=argparse.BooleanOptionalAction, default=None,
                   help="draw a chain of identical blocks once, marked 'x N' (default: only when --detail auto "
                        "needs it to keep a large network legible)")
    p.add_argument("--direction", choices=("TB", "LR"), default="TB")
    p.add_argument("--theme", choices=("color", "gray"), default="color")
    p.add_argument("--shapes", action="store_true", help="label edges with tensor shapes")
    p.add_argument("--params", action="store_true", help="show parameter counts")
    p.add_argument("--unroll", action="store_true", help="draw clique blocks with their stages unrolled")
    p.set_defaults(run=cmd_render)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except BrokenPipeError:  # `archdsl summary ... | head`
        sys.stderr.close()
        return 0
    except UsageError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    except ArchError as exc:
        print(exc.render(), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
