"""The `archdsl` command line: check, summary, list, compile, render, lsp.

A spec argument is a file or the name of a network or variant, found as archdsl.library describes
(beside, on ARCHDSL_PATH, in the spec library). Exit status: 0 on success, 1 for errors in a spec, 2
for usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys

from archdsl import __version__, limits
from archdsl.api import build_ir
from archdsl.checking import check_program
from archdsl.diagnostics import ArchError, Diagnostic, UsageError, did_you_mean, printable, source_lines
from archdsl.evaluate import Evaluator
from archdsl.importer.cli import add_parser as add_import_parser
from archdsl.library import library_files, pick_network, resolve
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
            ref = resolve(file)
            program = load(ref.path)
            network = pick_network(ref, args.network)
            if network is not None and network not in program.targets():
                raise UsageError(Diagnostic(f"no network or variant named '{network}' in {program.main}",
                                            help=did_you_mean(network, program.targets())))
            result = check_program(program, [network] if network else None)
            if result.errors:
                raise ArchError(result.errors, program.sources)
            where = f" ({ref.path})" if ref.searched else ""
            print(f"{file}{where}: ok ({len(result.targets)} networks, {result.checks} expectations met)")
        except UsageError as exc:
            print(exc.render(limits.value("errors")), file=sys.stderr)
            usage = True
        except ArchError as exc:
            print(exc.render(limits.value("errors")), file=sys.stderr)
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
    if not args.files and not args.library:
        raise _usage("list needs spec files, or --library for the spec library")
    for file in args.files + (library_files() if args.library else []):
        ref = resolve(file) if isinstance(file, str) else None
        program = load(ref.path if ref else file)
        print(f"{file} ({ref.path}):" if ref and ref.searched else f"{file}:")
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
    lines = source_lines(program.sources[span.file])
    if span.line == span.end_line:
        return lines[span.line - 1][span.col - 1:span.end_col - 1]
    return "..."


def _resolve_target(args) -> None:
    """A spec named by a network, or found on the search path: its path and its network."""
    ref = resolve(args.file)
    args.file = str(ref.path)
    args.network = pick_network(ref, args.network)


def cmd_compile(args) -> int:
    from archdsl.backend.cli import compile_command

    return compile_command(args, _overrides(args))


def cmd_render(args) -> int:
    from archdsl.render.cli import render_command

    return render_command(args, _overrides(args))


def cmd_lsp(args) -> int:
    try:
        from archdsl.editor.server import main as serve
    except ModuleNotFoundError as exc:
        raise _usage(f"archdsl lsp needs the package '{exc.name}': pip install 'archdsl[lsp]'") from None
    return serve()


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="archdsl", description="Compile .arch network specs: check shapes, "
                                  "summarise, draw with Graphviz, build PyTorch modules.")
    top.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="raise a limit for this run (see 'Limits' in docs/language.md): " + ", ".join(limits.LIMITS))

    def target(p):
        p.add_argument("file", help="a .arch spec file, or a network or variant name (searched for beside, on "
                                    "ARCHDSL_PATH, then in the spec library)")
        p.add_argument("--network", "-n", help="network or variant (default: the one named as FILE, else the file's "
                                               "first variant)")
        p.add_argument("-D", dest="define", action="append", metavar="NAME=VALUE", help="override a parameter")

    p = sub.add_parser("check", parents=[common], help="validate specs and their stated figures")
    p.add_argument("files", nargs="+")
    p.add_argument("--network", "-n", help="check only this network or variant (default: all of them)")
    p.set_defaults(run=cmd_check)
    p = sub.add_parser("summary", parents=[common], help="per-layer shapes, parameters and MACs")
    target(p)
    p.add_argument("--format", choices=("table", "json"), default="table")
    p.set_defaults(run=cmd_summary)
    p = sub.add_parser("list", parents=[common], help="networks and variants defined by files")
    p.add_argument("files", nargs="*")
    p.add_argument("--library", action="store_true", help="also list the spec library that ships with archdsl")
    p.set_defaults(run=cmd_list)
    p = sub.add_parser("compile", parents=[common], help="build the PyTorch module, run it once, write an artifact")
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
    p.add_argument("--inference", action="store_true",
                   help="eval-only inference build: BN folded into the conv or fc before it (with --weights: "
                        "the loaded weights are folded), no dropout, "
                        "channels-last where faster (docs/backend.md)")
    p.set_defaults(run=cmd_compile)
    p = sub.add_parser("render", parents=[common], help="draw the network with Graphviz")
    target(p)
    p.add_argument("-o", "--output", required=True, help="OUT.svg, .pdf, .png, .dot or .tex (TikZ)")
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
    p.add_argument("--dpi", type=int, default=200, help="PNG resolution (default 200)")
    p.add_argument("--standalone", action="store_true", help="with -o OUT.tex: a whole LaTeX document, not a picture")
    p.set_defaults(run=cmd_render)
    add_import_parser(sub)
    p = sub.add_parser("lsp", help="language server for editors (stdio): diagnostics, hover, definitions")
    p.set_defaults(run=cmd_lsp)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        for text in getattr(args, "limit", []):
            limits.set_limit(text)
        if getattr(args, "emit", None) == "onnx":  # a missing package is reported before any work
            from archdsl.backend.exports import require_onnx

            require_onnx()
        if hasattr(args, "file"):
            _resolve_target(args)
        return limits.run_deep(args.run, args)
    except BrokenPipeError:  # `archdsl summary ... | head`
        sys.stderr.close()
        return 0
    except UsageError as exc:
        print(exc.render(limits.value("errors")), file=sys.stderr)
        return 2
    except ArchError as exc:
        print(exc.render(limits.value("errors")), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except (MemoryError, RecursionError) as exc:  # only a bug lets these through the limits
        print(f"error: archdsl ran out of {'memory' if isinstance(exc, MemoryError) else 'stack'}; "
              "this is a bug in archdsl, please report it with the spec", file=sys.stderr)
        return 3
    except Exception as exc:  # noqa: BLE001  (a bug: say so in one line, never a traceback)
        print(f"error: internal error in archdsl ({type(exc).__name__}: {printable(str(exc))[:500]}); "
              "this is a bug, please report it with the spec", file=sys.stderr)
        return 3
    finally:
        limits.reset()


if __name__ == "__main__":
    sys.exit(main())
