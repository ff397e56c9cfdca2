"""Deployable exports of a built module: torch.export programs (.pt2) and ONNX models.

Both keep the batch axis dynamic (torch.export's ``Dim("batch")``): the example inputs have batch
2, since an exporter specialises a dimension of size 1. ONNX models use opset 18 (torch's
torch.export-based exporter) and call their inputs and outputs by the spec's names (``image``,
``logits``; several outputs in the spec's order). Each export is read back and run at batch 1 and
3 against the PyTorch module before it is written.
"""

from __future__ import annotations

import importlib
import io
import tempfile
from pathlib import Path

import torch
from torch import nn

from archdsl import ir
from archdsl.diagnostics import Diagnostic, UsageError

OPSET = 18
EXAMPLE_BATCH = 2
CHECK_BATCHES = (1, 3)
ONNX_PACKAGES = ("onnx", "onnxscript", "onnxruntime")


def require_onnx() -> None:
    """Refuse `--emit onnx` before any work when a package it needs is missing."""
    missing = []
    for package in ONNX_PACKAGES:
        try:
            importlib.import_module(package)
        except ImportError:
            missing.append(package)
    if missing:
        raise UsageError(Diagnostic(f"--emit onnx needs the package{'s' if len(missing) > 1 else ''} "
                                    f"{', '.join(missing)}, which {'are' if len(missing) > 1 else 'is'} not installed",
                                    help="pip install 'archdsl[onnx]'"))


def export_pt2(model: nn.Module, g: ir.Graph, device, say=print) -> bytes:
    """A torch.export program with a dynamic batch axis, checked after loading it back."""
    program = _exported(model, g, device)
    buffer = io.BytesIO()
    torch.export.save(program, buffer)
    data = buffer.getvalue()
    loaded = torch.export.load(io.BytesIO(data)).module()
    say(f"checked the exported program at batch {' and '.join(map(str, CHECK_BATCHES))}: "
        f"max abs difference {_check(model, g, device, lambda xs: _as_list(loaded(*xs))):.1e}")
    return data


def export_onnx(model: nn.Module, g: ir.Graph, device, say=print) -> bytes:
    """An ONNX model (opset 18) with the spec's input and output names and a dynamic batch axis,
    checked in onnxruntime."""
    import onnxruntime

    onnx_program = _exported(model, g, device, lambda m, xs, dims: torch.onnx.export(
        m, xs, input_names=list(g.graph["inputs"]), output_names=list(g.graph["outputs"]), dynamic_shapes=dims,
        opset_version=OPSET, dynamo=True, verbose=False))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        onnx_program.save(str(path))
        data = path.read_bytes()
    session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]

    def run(xs):
        return [torch.from_numpy(y) for y in session.run(None, {n: x.cpu().numpy() for n, x in zip(names, xs)})]

    say(f"checked the ONNX model in onnxruntime at batch {' and '.join(map(str, CHECK_BATCHES))}: "
        f"max abs difference {_check(model, g, device, run):.1e}")
    return data


def _inputs(g: ir.Graph, batch: int, device) -> tuple[torch.Tensor, ...]:
    return tuple(torch.randn(batch, *g.nodes[n]["shape"], device=device) for n in g.graph["inputs"])


def _export(model: nn.Module, inputs: tuple, dims: tuple):
    return torch.export.export(model, inputs, dynamic_shapes=dims)


def _exported(model: nn.Module, g: ir.Graph, device, exporter=_export):
    """`exporter(model, example inputs, dynamic shapes)` with a dynamic batch axis named `batch`."""
    batch = torch.export.Dim("batch", min=1)
    inputs = _inputs(g, EXAMPLE_BATCH, device)
    try:
        return exporter(model.eval(), inputs, tuple({0: batch} for _ in inputs))
    except Exception as exc:  # noqa: BLE001  (torch.export's many error types)
        raise UsageError(Diagnostic(f"torch.export could not export {g.graph['network']} with a dynamic batch "
                                    f"axis: {str(exc).strip().splitlines()[0]}",
                                    help="export a plain build (not --memory-efficient); report the op that "
                                         "fixes the batch size")) from None


def _as_list(result) -> list[torch.Tensor]:
    return list(result.values()) if isinstance(result, dict) else list(result) if isinstance(result, tuple | list) \
        else [result]


def _check(model: nn.Module, g: ir.Graph, device, run) -> float:
    """The largest absolute difference between `run` and the module, over CHECK_BATCHES."""
    worst = 0.0
    for batch in CHECK_BATCHES:
        xs = _inputs(g, batch, device)
        with torch.no_grad():
            expected = _as_list(model(*xs))
            got = run(xs)
        if len(got) != len(expected) or any(a.shape != b.shape for a, b in zip(got, expected)):
            raise UsageError(Diagnostic(f"the export of {g.graph['network']} gives other output shapes at batch "
                                        f"{batch}: {[list(t.shape) for t in got]}"))
        worst = max([worst, *((a.to(b.device) - b).abs().max().item() for a, b in zip(got, expected))])
    return worst
