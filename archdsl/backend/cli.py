"""`archdsl compile`: validate, build, load weights, run one forward pass on the chosen device, write
an artifact: the standalone .py (with its weights as a .pt state_dict when --weights is given), the
IR as YAML, a torch.export program (.pt2) or an ONNX model, both with a dynamic batch axis."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from archdsl.api import build_ir
from archdsl.diagnostics import Diagnostic, UsageError
from archdsl.files import check_output, write_atomic
from archdsl.loader import load
from archdsl.summary import human, summary_table

SUFFIXES = {"py": ".py", "pt2": ".pt2", "onnx": ".onnx", "yaml": ".yaml"}


def compile_command(args, overrides: dict) -> int:
    from archdsl.backend.exports import export_onnx, export_pt2

    if args.weights and args.emit == "yaml":
        raise UsageError(Diagnostic("--weights needs --emit py, pt2 or onnx: the YAML IR holds no weights",
                                    help="drop --weights, or choose another --emit"))
    import torch

    from archdsl.backend.compile import check_device, compile_module, compile_source
    from archdsl.ir import to_yaml

    say = (lambda *a, **k: None) if args.quiet else print
    program = load(args.file)
    g = build_ir(program, args.network, **overrides)
    device = check_device(args.device)
    out = check_output(Path(args.output) if args.output else Path(g.graph["network"] + SUFFIXES[args.emit]))
    start = time.perf_counter()
    model = compile_module(g, device=device, seed=args.seed, memory_efficient=args.memory_efficient).eval()
    if args.weights:
        from archdsl.weights import load_weights

        report = load_weights(model, args.weights)
        say(report.summary())
        for note in report.notes:
            print(f"warning: {note}", file=sys.stderr)
    if args.inference:  # the weights just built or loaded, folded into the inference build
        from archdsl.backend.inference import to_inference

        model = to_inference(model)
        source = type(model).__archdsl_source__
    else:
        source = compile_source(g, args.memory_efficient)
    inputs = tuple(torch.randn(1, *g.nodes[n]["shape"], device=device) for n in g.graph["inputs"])
    with torch.no_grad():
        result = model(*inputs)
    elapsed = time.perf_counter() - start
    outputs = result if isinstance(result, dict) else {next(iter(g.graph["outputs"])): result}
    say(summary_table(g))
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in outputs.items())
    say(f"built and ran on {device} in {elapsed:.2f} s: {shapes}; "
        f"{human(sum(p.numel() for p in model.parameters()))} parameters in the module")
    written = {}
    if args.emit == "py":
        written[out] = source.encode()
        if args.weights:
            written[out.with_suffix(".pt")] = _state_dict_bytes(model)
    elif args.emit == "yaml":
        written[out] = to_yaml(type(model).__archdsl_graph__ if args.inference else g).encode()  # the IR built
    elif args.emit == "pt2":
        written[out] = export_pt2(model, g, device, say)
    else:
        written[out] = export_onnx(model, g, device, say)
    for path, data in written.items():
        write_atomic(path, data)
        print(path if args.quiet else f"wrote {path}")
    return 0


def _state_dict_bytes(model) -> bytes:
    """The module's state_dict on the CPU, as `torch.save` writes it."""
    import io

    import torch

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    return buffer.getvalue()
