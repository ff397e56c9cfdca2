"""Weights for an imported spec: the source's tensors mapped onto the spec-built module, checked by running both."""

from __future__ import annotations

import contextlib

import torch

from archdsl.importer.model import ImportFailure
from archdsl.importer.modes import main_output, training_structure


def spec_weights(source: torch.nn.Module, spec: str, shapes: list[list[int]], tolerance: float = 1e-5) -> dict:
    """A state_dict for `archdsl.build(spec)` holding `source`'s weights; both give the same eval outputs."""
    import archdsl

    built = archdsl.build(spec).eval()
    load_source_weights(built, source, shapes)
    check_same(source.eval(), built, shapes, tolerance)
    return built.state_dict()


def uncalled(source: torch.nn.Module, shapes: list[list[int]]) -> list[str]:
    """The modules that run neither in eval mode nor in training mode (found with forward hooks; in
    training mode the layers compute as in eval mode, modes.py): the importer leaves these out."""
    called = set()
    hooks = [m.register_forward_hook(lambda m, args, out: called.add(id(m))) for m in source.modules()]
    try:
        with torch.no_grad():
            xs = [torch.randn(2, *s) for s in shapes]
            source.eval()(*xs)
            if any(id(m) not in called and next(m.parameters(recurse=False), None) is not None
                   for m in source.modules()):
                with contextlib.suppress(Exception), training_structure(source):  # one that fails: left out
                    source(*xs)
    finally:
        for hook in hooks:
            hook.remove()
    return [path for path, m in source.named_modules() if id(m) not in called]


def load_source_weights(built: torch.nn.Module, source: torch.nn.Module, shapes: list[list[int]]) -> None:
    """Load `source`'s weights into the spec-built module; the tensors of modules the source never calls in
    eval mode (left out of the spec) are the only ones allowed to stay unmatched."""
    from archdsl.weights import load_weights

    left_out = uncalled(source, shapes)
    if not left_out:
        load_weights(built, source)
        return
    report = load_weights(built, source, strict=False)
    stray = [k for k in report.unmatched_source if not any(k.startswith(p + ".") for p in left_out)]
    if report.unmatched_target or stray:
        raise ImportFailure("", f"the source's weights do not fit the imported spec (unmatched: "
                                f"{(report.unmatched_target + stray)[:3]})",
                            help="please report this model: the importer wrote a wrong spec")


def check_same(reference, built, shapes, tolerance: float = 1e-5) -> float:
    """The largest relative difference of the two models' eval outputs on random inputs; an error above
    tolerance. Outputs the spec has beyond the source's eval output (auxiliary heads) are compared with
    the source's training-mode outputs, computed with eval-mode layers (modes.py)."""
    gen = torch.Generator().manual_seed(0)
    xs = [torch.randn(2, *s, generator=gen) for s in shapes]
    with torch.no_grad():
        want = reference(*xs)
        got = built(*xs)
        extra = _outputs(got)[1:]
        if extra and len(_outputs(want)) == 1:
            with training_structure(reference):
                training = _outputs(reference(*xs))
        else:
            training = _outputs(want)
    want, got = main_output(want), main_output(got)
    rel = _relative(want, got)
    if rel > tolerance:
        _fail("", rel, f", shapes {list(want.shape)} and {list(got.shape)}")
    for n, out in enumerate(extra, 2):
        aux = min((_relative(t, out) for t in training if isinstance(t, torch.Tensor)), default=float("inf"))
        if aux > tolerance:
            _fail(f"output {n}: ", aux, "")
        rel = max(rel, aux)
    return rel


def _outputs(out) -> list:
    return list(out.values()) if isinstance(out, dict) else list(out) if isinstance(out, (tuple, list)) else [out]


def _relative(want: torch.Tensor, got: torch.Tensor) -> float:
    if tuple(got.shape) != tuple(want.shape):
        return float("inf")
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-12)).item()


def _fail(what: str, rel: float, shapes: str):
    raise ImportFailure("", f"the imported spec does not compute the same function ({what}relative difference "
                            f"{rel:.2e}{shapes})", help="please report this model: the importer wrote a wrong spec")
