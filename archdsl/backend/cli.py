"""`archdsl compile`: validate, build, run one forward pass on the chosen device, write an artifact."""

from __future__ import annotations

import time
from pathlib import Path

from archdsl.api import build_ir
from archdsl.diagnostics import Diagnostic, UsageError
from archdsl.files import write_atomic
from archdsl.loader import load
from archdsl.summary import human, summary_table


def resolve_device(name: str):
    """A torch.device, refusing devices this machine lacks instead of silently falling back."""
    import torch

    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(Diagnostic(f"device '{name}' was asked for but CUDA is not available here",
                                    help="use --device cpu, or install a CUDA build of torch on a GPU machine"))
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UsageError(Diagnostic(f"device '{name}' is not available", help="use --device cpu"))
    return device


def compile_command(args, overrides: dict) -> int:
    import torch

    from archdsl.backend.compile import compile_module, compile_source
    from archdsl.ir import to_yaml

    program = load(args.file)
    g = build_ir(program, args.network, **overrides)
    device = resolve_device(args.device)
    network = g.graph["network"]
    suffix = {"py": ".py", "pt2": ".pt2", "onnx": ".onnx", "yaml": ".yaml"}[args.emit]
    out = Path(args.output) if args.output else Path(args.output_dir) / (network + suffix)
    start = time.perf_counter()
    if getattr(args, "inference", False):
        model = _inference_model(g, args, device)
        source = type(model).__archdsl_source__
    else:
        if getattr(args, "weights", None):
            raise UsageError(Diagnostic("--weights is for inference builds",
                                        help="add --inference, or load weights with archdsl.load_weights"))
        source = compile_source(g, args.memory_efficient)
        model = compile_module(g, device=device, seed=args.seed, memory_efficient=args.memory_efficient).eval()
    inputs = tuple(torch.randn(1, *g.nodes[n]["shape"], device=device) for n in g.graph["inputs"])
    with torch.no_grad():
        result = model(*inputs)
    elapsed = time.perf_counter() - start
    outputs = result if isinstance(result, dict) else {next(iter(g.graph["outputs"])): result}
    print(summary_table(g))
    shapes = ", ".join(f"{k} {list(v.shape)}" for k, v in outputs.items())
    print(f"built and ran on {device} in {elapsed:.2f} s: {shapes}; "
          f"{human(sum(p.numel() for p in model.parameters()))} parameters in the module")
    if args.emit == "py":
        data = source.encode()
    elif args.emit == "yaml":
        data = to_yaml(g).encode()
    elif args.emit == "pt2":
        data = _export_pt2(model, inputs)
    else:
        data = _export_onnx(model, inputs)
    write_atomic(out, data)
    print(f"wrote {out}")
    if args.emit == "py" and getattr(args, "weights", None):
        import io

        buffer = io.BytesIO()
        torch.save({k: v.cpu().contiguous() for k, v in model.state_dict().items()}, buffer)
        write_atomic(out.with_suffix(".pt"), buffer.getvalue())
        print(f"wrote {out.with_suffix('.pt')} (folded weights)")
    return 0


def _inference_model(g, args, device):
    """The inference build: the plain build under --seed, or with --weights loaded, folded."""
    from archdsl.backend.compile import compile_module
    from archdsl.backend.inference import to_inference

    plain = compile_module(g, seed=args.seed)
    if args.weights:
        from archdsl.weights import load_weights

        load_weights(plain, args.weights)
    return to_inference(plain.eval()).to(device)


def _export_pt2(model, inputs) -> bytes:
    import io

    import torch

    buffer = io.BytesIO()
    torch.export.save(torch.export.export(model, inputs), buffer)
    return buffer.getvalue()


def _export_onnx(model, inputs) -> bytes:
    import io

    import torch

    try:
        import onnx  # noqa: F401
    except ImportError:
        raise UsageError(Diagnostic("--emit onnx needs the onnx package",
                                    help="pip install 'archdsl[onnx]'")) from None
    buffer = io.BytesIO()
    torch.onnx.export(model, inputs, buffer, dynamo=False)
    return buffer.getvalue()
