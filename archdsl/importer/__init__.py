"""`archdsl import`: a PyTorch module or an ONNX file becomes a readable spec.

The PyTorch path (trace.py) traces with torch.fx, keeping module calls as a tree, with torch.export
where fx cannot trace (export.py); sizes read at run time are made static (static.py) and torch.nn
layers mapped by layers.py. The ONNX path (onnx_reader.py) reads the graph with the `onnx` package.
structure.py folds idioms (gap, channel shuffle, DenseNet wiring), optional.py merges instances that
differ by an optional part, blocks.py turns module classes into `block` definitions with parameters
and emit.py writes the text, repeats as `for` loops. Both front ends are imported lazily: importing
archdsl never imports torch or onnx.
"""

from __future__ import annotations

import warnings

from archdsl.importer.model import ImportFailure, PartialImport

__all__ = ["ImportFailure", "PartialImport", "import_module", "import_onnx"]


def import_module(module, *shapes, network: str | None = None, source: str | None = None) -> str:
    """Spec text for a torch.nn.Module called on inputs of the given shapes (no batch axis, e.g. (3, 224, 224))."""
    from archdsl.importer.emit import Emitter, snake
    from archdsl.importer.trace import trace_module

    if not shapes:
        raise ImportFailure("", "no input shape given", help="pass one shape per input, e.g. (3, 224, 224)")
    trace = trace_module(module, [list(s) for s in shapes], source or f"the PyTorch module {type(module).__name__}")
    for message in trace.warnings:  # parameters the spec leaves out: never silent
        warnings.warn(PartialImport(message), stacklevel=2)
    return Emitter(trace, network or snake(type(module).__name__)).run()


def import_onnx(path, network: str | None = None) -> str:
    """Spec text for an ONNX file (needs the `onnx` package: pip install 'archdsl[onnx]')."""
    from archdsl.importer.emit import Emitter
    from archdsl.importer.onnx_reader import read_onnx

    trace = read_onnx(path)
    return Emitter(trace, network or "imported").run()
