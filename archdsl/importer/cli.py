"""The `archdsl import` subcommand: where the model comes from, and where the spec and weights go."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import warnings
from pathlib import Path

from archdsl.diagnostics import Diagnostic, UsageError
from archdsl.importer.model import ImportFailure, PartialImport


def add_parser(sub) -> None:
    p = sub.add_parser("import", help="write a spec (and weights) for a PyTorch model or an ONNX file")
    p.add_argument("source", help="package.module:callable (called with no arguments), path/file.py:callable, "
                                  "a whole module saved with torch.save (.pt/.pth), or a .onnx file")
    p.add_argument("--input", action="append", default=[], metavar="C,H,W",
                   help="the shape of one input without the batch axis (once per input; not for .onnx)")
    p.add_argument("-o", "--output", required=True, help="the spec to write (OUT.arch)")
    p.add_argument("--weights", metavar="OUT.pt", help="also write the source's weights as a state_dict for the "
                                                       "spec-built module (checked: same outputs)")
    p.add_argument("--network", help="the network's name in the spec (default: the callable's or the file's name)")
    p.set_defaults(run=import_command)


def _usage(message: str, help: str | None = None) -> UsageError:
    return UsageError(Diagnostic(message, help=help))


def _shape(text: str) -> list[int]:
    try:
        shape = [int(x) for x in text.split(",")]
    except ValueError:
        shape = []
    if not shape or any(x <= 0 for x in shape):
        raise _usage(f"--input {text!r} is not a shape", help="give the sizes without the batch axis: --input 3,224,224")
    return shape


def load_source(source: str):
    """The nn.Module that SOURCE names (torch is imported here, not before)."""
    import torch

    if source.endswith((".pt", ".pth")):
        path = Path(source)
        if not path.is_file():
            raise _usage(f"no such file: {source}")
        sys.path.insert(0, str(Path.cwd()))  # classes of a pickled module import as for any unpickling
        try:
            obj = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as exc:  # noqa: BLE001 - unpickling runs the file's code: report what failed, no traceback
            raise _usage(f"cannot load {source}: {exc}", help="the module's classes must be importable (the "
                         "working directory and PYTHONPATH are searched)") from None
        finally:
            sys.path.pop(0)
        if not isinstance(obj, torch.nn.Module):
            raise _usage(f"{source} holds a {type(obj).__name__}, not a whole module",
                         help="save the model with torch.save(model), or name its constructor: package.module:callable")
        return obj
    if ":" not in source:
        raise _usage(f"cannot tell what {source!r} is", help="give package.module:callable, path/file.py:callable, "
                                                             "a .pt/.pth file or a .onnx file")
    where, name = source.rsplit(":", 1)
    try:
        if where.endswith(".py"):
            if not Path(where).is_file():
                raise _usage(f"no such file: {where}")
            spec = importlib.util.spec_from_file_location(Path(where).stem, where)
            mod = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(mod)
        else:
            mod = importlib.import_module(where)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - any error of the imported code is reported
        raise _usage(f"cannot import {where}: {exc}") from None
    factory = getattr(mod, name, None)
    if not callable(factory):
        raise _usage(f"{where} has no callable '{name}'")
    model = factory()
    if not isinstance(model, torch.nn.Module):
        raise _usage(f"{source}() returned a {type(model).__name__}, not a torch.nn.Module")
    return model


def _default_name(source: str) -> str | None:
    """The callable's name (`torchvision.models:resnet50` -> resnet50) or the file's stem, when a valid name."""
    from archdsl.importer.emit import ident

    name = source.rsplit(":", 1)[1] if ":" in source and not source.endswith((".pt", ".pth")) else Path(source).stem
    return ident(name, "net") if name else None


def import_command(args: argparse.Namespace) -> int:
    from archdsl.importer import import_module, import_onnx

    shapes = [_shape(s) for s in args.input]
    out = Path(args.output)
    try:
        if args.source.endswith(".onnx"):
            if not Path(args.source).is_file():
                raise _usage(f"no such file: {args.source}")
            from archdsl.importer.onnx_reader import onnx_weights, require_onnx

            require_onnx()
            text = import_onnx(args.source, network=args.network or _default_name(args.source))
            weights = onnx_weights(args.source, text) if args.weights else None
        else:
            if not shapes:
                raise _usage("a PyTorch model needs the shape of its input", help="add --input C,H,W (once per input)")
            model = load_source(args.source)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", PartialImport)
                text = import_module(model, *shapes, network=args.network or _default_name(args.source),
                                     source=args.source)
            for w in caught:  # what the spec leaves out, said as a warning; anything else as Python would
                if issubclass(w.category, PartialImport):
                    print(f"warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)
            weights = None
            if args.weights:
                from archdsl.importer.verify import spec_weights

                weights = spec_weights(model, text, shapes)
    except ImportFailure as exc:
        raise _usage(f"cannot import {args.source}: at '{exc.where or '<root>'}': {exc.what}", help=exc.help) from None
    out.write_text(text)
    print(f"wrote {out} ({sum(1 for line in text.splitlines() if line.strip() and not line.lstrip().startswith('#'))}"
          " lines)")
    if weights is not None:
        import torch

        torch.save(weights, args.weights)
        print(f"wrote {args.weights}")
    return 0
